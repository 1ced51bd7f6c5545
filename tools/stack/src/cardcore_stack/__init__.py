"""The local stack: `cardcore up` (every service as a real process) and `cardcore demo`."""
