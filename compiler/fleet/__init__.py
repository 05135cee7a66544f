"""The fleet loop, build side: read the devices' signed status reports back and show where each stands."""
