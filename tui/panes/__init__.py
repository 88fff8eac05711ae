"""The TUI panes."""
