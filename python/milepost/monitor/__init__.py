"""`milepost monitor`: a terminal UI attached to a live run (Textual)."""
