"""Bundled data: a public-domain passage for measuring language-model accuracy on real text."""
