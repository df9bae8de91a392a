"""Efficiency techniques, one module per family. Each module registers its techniques on import;
the imports below are explicit so that registration is visible and a name collision raises."""
from .base import (Context, Range, Technique, TechniqueError, build, build_all, check_fields, check_scenario, get,  # noqa: F401
                   register, registry)
from . import baseline  # noqa: F401
from . import fused  # noqa: F401
from . import lora  # noqa: F401
from . import qlora  # noqa: F401
from . import adam8bit  # noqa: F401
from . import grad_ckpt  # noqa: F401
from . import quant_bnb  # noqa: F401
from . import quant_torchao  # noqa: F401
from . import sparsity  # noqa: F401
from . import prune_simple  # noqa: F401
from . import prune_dedup  # noqa: F401
from . import prune_perplexity  # noqa: F401
from . import prune_el2n  # noqa: F401
