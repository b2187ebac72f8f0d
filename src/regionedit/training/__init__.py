"""Training apps (on top of the library): bundled world models, the region predictor.

Every entry point is ``main(argv)``, resumable from checkpoints under its ``--out`` folder, and can
continue from the weights shipped in the package.
"""
