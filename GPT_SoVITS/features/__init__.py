"""Feature extractors: spectrograms, HuBERT SSL features, BERT text features, speaker-verification embeddings."""
