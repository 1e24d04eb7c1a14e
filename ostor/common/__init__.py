"""The little that every layer shares: identifiers, errors, message frames, workers."""
