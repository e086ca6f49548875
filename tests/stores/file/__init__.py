"""Tests of the file:// store: its files, crash safety and processes."""
