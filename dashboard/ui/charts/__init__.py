"""ui/charts."""
