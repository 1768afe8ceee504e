"""AI pair-programmer: a virtual participant that joins a room (not built yet, see issue 8)."""
