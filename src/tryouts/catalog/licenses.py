"""What each licence in the catalog allows: commercial use, and any condition a user should read first.

The advisor uses it for ``--commercial`` (``tryouts recommend``) and says each candidate's licence. This is a
summary to steer a choice, not legal advice: each entry links to the licence text, and the conditions named
are the ones a team most often trips on. Every ``license`` in the catalog must be a key here (a test checks).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Licence:
    """A licence: its name, whether commercial use is allowed, the condition to read, and where its text is
    (None for API terms, which each entry's ``sources.license`` links)."""

    id: str
    name: str
    commercial: bool
    condition: str | None
    url: str | None


LICENCES: dict[str, Licence] = {lic.id: lic for lic in (
    Licence("apache-2.0", "Apache 2.0", True, None, "https://www.apache.org/licenses/LICENSE-2.0"),
    Licence("mit", "MIT", True, None, "https://opensource.org/license/mit"),
    Licence("bsd-3-clause", "BSD 3-Clause", True, None, "https://opensource.org/license/bsd-3-clause"),
    Licence("cc-by-4.0", "CC BY 4.0", True, "give attribution", "https://creativecommons.org/licenses/by/4.0/"),
    Licence("cc-by-nc-4.0", "CC BY-NC 4.0", False, "non-commercial use only",
            "https://creativecommons.org/licenses/by-nc/4.0/"),
    Licence("bigcode-openrail-m", "BigCode OpenRAIL-M", True, "use restrictions (Attachment A) pass on to users",
            "https://huggingface.co/spaces/bigcode/bigcode-model-license-agreement"),
    Licence("deepseek", "DeepSeek Model License", True, "use restrictions (Attachment A) pass on to users",
            "https://github.com/deepseek-ai/DeepSeek-V3/blob/main/LICENSE-MODEL"),
    Licence("gemma", "Gemma Terms of Use", True, "the Gemma prohibited use policy applies",
            "https://ai.google.dev/gemma/terms"),
    Licence("llama2", "Llama 2 Community License", True, "a licence from Meta above 700 million monthly users",
            "https://ai.meta.com/llama/license/"),
    Licence("llama3.1", "Llama 3.1 Community License", True, "a licence from Meta above 700 million monthly users; "
            "\"Built with Llama\" shown", "https://www.llama.com/llama3_1/license/"),
    Licence("llama3.2", "Llama 3.2 Community License", True, "a licence from Meta above 700 million monthly users; "
            "\"Built with Llama\" shown", "https://www.llama.com/llama3_2/license/"),
    Licence("llama3.3", "Llama 3.3 Community License", True, "a licence from Meta above 700 million monthly users; "
            "\"Built with Llama\" shown", "https://www.llama.com/llama3_3/license/"),
    Licence("llama4", "Llama 4 Community License", True, "a licence from Meta above 700 million monthly users; "
            "\"Built with Llama\" shown", "https://www.llama.com/llama4/license/"),
    Licence("qwen", "Qwen License", True, "a licence from Alibaba Cloud above 100 million monthly users",
            "https://huggingface.co/Qwen/Qwen2.5-72B-Instruct/blob/main/LICENSE"),
    Licence("qwen-research", "Qwen Research License", False, "research and non-commercial use only",
            "https://huggingface.co/Qwen/Qwen2.5-3B-Instruct/blob/main/LICENSE"),
    Licence("mrl", "Mistral Research License", False, "research use only; commercial use needs a Mistral licence",
            "https://mistral.ai/licenses/MRL-0.1.md"),
    Licence("mnpl", "Mistral Non-Production License", False, "no production or commercial use",
            "https://mistral.ai/licenses/MNPL-0.1.md"),
    Licence("proprietary", "the provider's API terms", True, "the provider's API terms (your data goes to the "
            "provider)", None),
)}


def licence(license_id: str) -> Licence | None:
    """The :class:`Licence` for a catalog ``license`` id; None when the catalog names one this table lacks."""
    return LICENCES.get(license_id.lower())


def commercial_use(license_id: str) -> bool | None:
    """Whether the licence allows commercial use; None when unknown (treat as not allowed until checked)."""
    lic = licence(license_id)
    return None if lic is None else lic.commercial
