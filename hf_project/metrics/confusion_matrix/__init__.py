"""Makes this metric script a package so packaging tools ship it; evaluate loads the .py by path."""
