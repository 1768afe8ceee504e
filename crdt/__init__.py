"""The Yjs wire protocol, document schema helpers and text offsets. No I/O."""
