"""Two-tower retrieval, all in one place: model, examples, loss, training job, index, retriever, evaluation."""
