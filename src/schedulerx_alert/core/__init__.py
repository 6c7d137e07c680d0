"""The pure core: no I/O, no clock reads; everything it needs comes in as arguments."""
