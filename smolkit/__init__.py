"""smolkit: the plumbing behind the SFT vs DPO course notebooks. Import from its modules, for example
`from smolkit.models import load_model`; the package itself exports nothing, so every name has one home."""
