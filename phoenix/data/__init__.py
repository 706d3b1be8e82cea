"""What models learn from: impression logs and their splits (the synthetic world is one producer),
hashed request batches, packed training examples, interaction logs and the next-item protocol."""
