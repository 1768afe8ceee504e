"""Rooms: one pycrdt Doc with its peers, awareness and roles; the registry, the stores, and
the brokers that share rooms between instances. Of our packages it imports ``crdt`` only."""
