"""namestudio front ends: the Textual app and the headless CLI."""
