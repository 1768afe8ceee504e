"""Rooms: one pycrdt Doc with its peers and awareness, the registry, and the stores."""
