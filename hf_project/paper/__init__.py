"""The paper builder: LaTeX sources and paper.pdf generated from runs/, and the course submission zip."""

from hf_project.paper.builder import PaperArguments, build_paper

__all__ = ["PaperArguments", "build_paper"]
