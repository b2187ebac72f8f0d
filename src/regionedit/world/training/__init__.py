"""Training the bundled shapes-world models: data, trainers, the from-scratch recipe, model cards, and the world
as the region trainer's data source (:mod:`.region_data`)."""
