"""Developer helpers: deterministic test weights and tiny pretrained sets (never used at inference)."""
