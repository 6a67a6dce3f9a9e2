"""The upstream side: Hume's streaming protocols behind one adapter interface."""
