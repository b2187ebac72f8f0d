"""Training (on top of the library): the seed-001 region predictor's trainer (:mod:`.region`, on batches from a
data source the app passes in) and the shared loop pieces (:mod:`.common`). The bundled shapes-world models'
trainers and the world's region data source are in :mod:`regionedit.world.training`.

Every entry point is ``main(argv)`` (the region trainer's also takes its data source), resumable from
checkpoints under its ``--out`` folder, and can continue from the weights shipped in the package.
"""
