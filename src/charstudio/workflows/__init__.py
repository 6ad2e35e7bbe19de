"""ComfyUI workflows: node catalog, graph builders, validation, templates.

The stage between a character's profile and a backend: :func:`build_workflow` turns a
:class:`WorkflowRequest` into an API-format graph for ``POST /prompt``, validated against
a :class:`Catalog` of the target server's nodes (the built-in one, recorded from a real
ComfyUI, or one read from the server's ``/object_info``) the way ComfyUI validates it.

Modules: ``types`` (node specs, error shapes, exceptions), ``catalog`` (reading
``/object_info``), ``validate`` (ComfyUI's ``validate_prompt``), ``rejections`` (errors to
messages with fixes), ``families`` (SD1.5/SDXL and IP-Adapter presets as data), ``request``,
``graph`` and ``builders`` (the graphs), ``character_weight`` (identity vs outfit on
IP-Adapter), ``editor_format`` (a graph as ComfyUI's editor saves it: the PNG ``workflow``
chunk), ``templates`` (files under ``workflows/``).
"""

from charstudio.workflows.builders import (
    METHOD_RECIPES,
    MethodRecipe,
    assemble,
    build_workflow,
    check_request,
)
from charstudio.workflows.catalog import (
    BUILTIN_CLASS_TYPES,
    MODEL_FOLDERS,
    REMOVED_NODES,
    Catalog,
    NodePack,
    extract_builtin,
    merge_catalogs,
    node_pack_for,
)
from charstudio.workflows.character_weight import (
    IPAdapterApplication,
    carries_outfit,
    ipadapter_application,
    preset_for,
)
from charstudio.workflows.editor_format import editor_workflow
from charstudio.workflows.families import (
    FACEID_PRESETS,
    IPADAPTER_PRESETS,
    MIN_SIDE,
    MODEL_FAMILIES,
    IPAdapterPreset,
    ModelFamily,
    ModelFamilyName,
    default_ipadapter_preset,
    parse_aspect,
)
from charstudio.workflows.graph import GraphBuilder, NodeRef
from charstudio.workflows.rejections import describe_error, rejection, rejection_from_response
from charstudio.workflows.request import (
    SEED_MAX,
    VARIATION_PROMPTS,
    PoseControl,
    Variation,
    WorkflowRequest,
    check_side,
    random_seed,
)
from charstudio.workflows.templates import (
    TEMPLATE_NAMES,
    AcceptedResult,
    build_template,
    fill_template,
    save_generated,
    write_json_atomic,
    write_templates,
)
from charstudio.workflows.types import (
    ComfyError,
    Graph,
    InvalidObjectInfo,
    MissingModel,
    ModelMissing,
    NodeError,
    NodeSpec,
    OutputSpec,
    Socket,
    WorkflowRejected,
)
from charstudio.workflows.validate import ValidationResult, check_graph, validate_graph

__all__ = [
    "BUILTIN_CLASS_TYPES",
    "FACEID_PRESETS",
    "IPADAPTER_PRESETS",
    "METHOD_RECIPES",
    "MIN_SIDE",
    "MODEL_FAMILIES",
    "MODEL_FOLDERS",
    "REMOVED_NODES",
    "SEED_MAX",
    "TEMPLATE_NAMES",
    "VARIATION_PROMPTS",
    "AcceptedResult",
    "Catalog",
    "ComfyError",
    "Graph",
    "GraphBuilder",
    "IPAdapterApplication",
    "IPAdapterPreset",
    "InvalidObjectInfo",
    "MethodRecipe",
    "MissingModel",
    "ModelFamily",
    "ModelFamilyName",
    "ModelMissing",
    "NodeError",
    "NodePack",
    "NodeRef",
    "NodeSpec",
    "OutputSpec",
    "PoseControl",
    "Socket",
    "ValidationResult",
    "Variation",
    "WorkflowRejected",
    "WorkflowRequest",
    "assemble",
    "build_template",
    "build_workflow",
    "carries_outfit",
    "check_graph",
    "check_request",
    "check_side",
    "default_ipadapter_preset",
    "describe_error",
    "editor_workflow",
    "extract_builtin",
    "fill_template",
    "ipadapter_application",
    "merge_catalogs",
    "node_pack_for",
    "parse_aspect",
    "preset_for",
    "random_seed",
    "rejection",
    "rejection_from_response",
    "save_generated",
    "validate_graph",
    "write_json_atomic",
    "write_templates",
]
