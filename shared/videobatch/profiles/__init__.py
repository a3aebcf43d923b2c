"""Shipped analysis profiles (profiles.json), read through videobatch.domain.profiles.load_default_profiles."""
