"""Candidate samplers with TensorFlow's semantics, on the device of `true_classes`: the functional TF API and one
class per sampler; the negative sources (queue, memory bank) of the image task."""
from contrastive.samplers.candidate import (
    all_candidate_sampler,
    expected_count,
    log_uniform_candidate_sampler,
    uniform_candidate_sampler,
)
from contrastive.samplers.negatives import (
    MemoryBank,
    NegativeQueue,
    Negatives,
    SupportSet,
)
from contrastive.samplers.objects import (
    CandidateSampler,
    LearnedUnigramSampler,
    LogUniformSampler,
    UniformSampler,
    UnigramSampler,
)
from contrastive.samplers.unigram import (
    LearnedUnigramCandidateSampler,
    fixed_unigram_candidate_sampler,
    learned_unigram_candidate_sampler,
)

__all__ = [
    "CandidateSampler",
    "LearnedUnigramCandidateSampler",
    "LearnedUnigramSampler",
    "LogUniformSampler",
    "MemoryBank",
    "NegativeQueue",
    "Negatives",
    "SupportSet",
    "UniformSampler",
    "UnigramSampler",
    "all_candidate_sampler",
    "expected_count",
    "fixed_unigram_candidate_sampler",
    "learned_unigram_candidate_sampler",
    "log_uniform_candidate_sampler",
    "uniform_candidate_sampler",
]
