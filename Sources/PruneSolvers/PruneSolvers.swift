// PruneSolvers: layer-wise pruning of one linear layer. See the module overview in the README.
@_exported import PruneKernels
