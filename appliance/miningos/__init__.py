"""The Mining OS module: hashing, thermal guard and tuning around the ASIC drivers."""
