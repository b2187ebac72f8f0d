"""Training the bundled shapes-world models: data, trainers, the from-scratch recipe, model cards."""
