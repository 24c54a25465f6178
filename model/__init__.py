"""Model lifecycle: data contract, training, evaluation, registry, promotion gate, rollback."""
