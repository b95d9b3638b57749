"""neumat: real-time neural materials you can train, ship and see."""

__version__ = "0.1.0"
