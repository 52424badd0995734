"""Interface declarations, kept apart from the domains that implement them (as
RedLeaf keeps its interfaces in their own crate)."""
