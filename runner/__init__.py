"""Code execution through Judge0 CE: snapshot a room's code, run it, write the result
into the room's ``runs`` map (``runner.service``). May import ``crdt`` and ``rooms`` only."""
