"""Streaming (online variational Bayes) LDA over IP documents.

:class:`OnlineLDA` passes over the documents in shuffled minibatches of
``batch_size`` documents, ``passes`` times, updating the topic-word
parameters by online variational Bayes (Hoffman, Blei and Bach 2010), with
scikit-learn's ``LatentDirichletAllocation(learning_method="online")``
updates, initialisation and step schedule. Its E-step runs per document in
Python; here it runs over the whole minibatch as sparse matrix products, about
two orders of magnitude faster on IP documents (which are short). Only one
minibatch of documents is ever expanded, so the corpus may be a memory-mapped
or chunked matrix much larger than the working set.
What it keeps is numbers only (``components_``: topic x word variational
parameters, ``doc_topic_``: the IP-topic distributions), which is what the
registry stores; the estimator itself is never pickled.

>>> import numpy as np, scipy.sparse as sp
>>> rng = np.random.default_rng(0)
>>> docs = sp.csr_matrix(rng.poisson(1.0, size=(40, 12)).astype(float))
>>> lda = OnlineLDA(topics=3, passes=2, batch_size=16, seed=0).fit(docs)
>>> lda.topic_word_.shape, lda.doc_topic_.shape, bool(np.allclose(lda.doc_topic_.sum(1), 1, atol=1e-5))
((3, 12), (40, 3), True)
"""

from __future__ import annotations

import inspect
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from mlscale.errors import ValidationError

__all__ = ["OnlineLDA", "expected_log_dirichlet", "infer_doc_topics"]

F32 = npt.NDArray[np.float32]
_EPS = float(np.finfo(np.float64).eps)


def expected_log_dirichlet(params: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """E[log x] for x ~ Dirichlet(params), row by row."""
    from scipy.special import digamma  # not at import: scipy.special is slow to load, the CLI loads every app

    p = np.asarray(params, dtype=np.float64)
    return np.asarray(digamma(p) - digamma(p.sum(axis=1, keepdims=True)), dtype=np.float64)


def _e_step(
    counts: sp.csr_matrix,
    exp_elog_beta: npt.NDArray[np.float64],
    alpha: float,
    *,
    max_iter: int,
    tol: float,
    sstats: bool,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
    """Variational E-step for every document of ``counts`` at once.

    Returns the documents' Dirichlet parameters (gamma, D x K) and, when asked,
    the topic-word sufficient statistics (K x V) of the M-step. The updates
    are scikit-learn's (Hoffman et al. 2010), with the per-document loop
    replaced by sparse matrix products over the whole minibatch.
    """
    n_docs, k = counts.shape[0], exp_elog_beta.shape[0]
    rows = np.repeat(np.arange(n_docs), np.diff(counts.indptr))
    cols = counts.indices
    beta_cols = np.ascontiguousarray(exp_elog_beta[:, cols].T)  # nnz x K
    beta_t = np.ascontiguousarray(exp_elog_beta.T)  # V x K
    gamma = np.ones((n_docs, k))
    exp_theta = np.exp(expected_log_dirichlet(gamma))
    for _ in range(max_iter):
        norm = np.einsum("ij,ij->i", exp_theta[rows], beta_cols) + _EPS
        weighted = sp.csr_matrix((counts.data / norm, cols, counts.indptr), shape=counts.shape)
        new = alpha + exp_theta * (weighted @ beta_t)
        change = float(np.abs(new - gamma).mean(axis=1).max()) if n_docs else 0.0
        gamma = new
        exp_theta = np.exp(expected_log_dirichlet(gamma))
        if change < tol:
            break
    if not sstats:
        return gamma, None
    norm = np.einsum("ij,ij->i", exp_theta[rows], beta_cols) + _EPS
    weighted = sp.csr_matrix((counts.data / norm, cols, counts.indptr), shape=counts.shape)
    stats = np.asarray((weighted.T @ exp_theta).T) * exp_elog_beta
    return gamma, stats


def infer_doc_topics(
    counts: sp.csr_matrix,
    components: npt.NDArray[Any],
    doc_topic_prior: float,
    *,
    max_iter: int = 100,
    tol: float = 1e-3,
) -> F32:
    """P(topic | document) for documents given topic-word parameters (the variational E-step)."""
    counts = sp.csr_matrix(counts, dtype=np.float64)
    exp_beta = np.exp(expected_log_dirichlet(components))
    gamma, _ = _e_step(counts, exp_beta, doc_topic_prior, max_iter=max_iter, tol=tol, sstats=False)
    theta = gamma / gamma.sum(axis=1, keepdims=True)
    return np.asarray(theta, dtype=np.float32)


class OnlineLDA:
    """Latent Dirichlet allocation trained by online variational Bayes over minibatches of documents.

    ``topics``: number of topics (Spot used 20); ``passes``: how many times the
    documents are streamed; ``doc_topic_prior`` / ``topic_word_prior``: the
    Dirichlet priors (default ``1 / topics``); ``batch_size``: documents per
    minibatch; ``learning_decay`` / ``learning_offset``: the step-size schedule
    ``(offset + t) ** -decay``.
    """

    def __init__(
        self,
        topics: int = 20,
        passes: int = 10,
        doc_topic_prior: float | None = None,
        topic_word_prior: float | None = None,
        batch_size: int = 1024,
        learning_decay: float = 0.7,
        learning_offset: float = 10.0,
        seed: int = 0,
    ) -> None:
        self.topics = topics
        self.passes = passes
        self.doc_topic_prior = doc_topic_prior
        self.topic_word_prior = topic_word_prior
        self.batch_size = batch_size
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.seed = seed

    #: The constructor's arguments, in order: what :meth:`get_params` returns.
    _PARAMS = tuple(inspect.signature(__init__).parameters)[1:]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._PARAMS}

    def _check(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("topics", isinstance(self.topics, int) and 1 <= self.topics <= 10_000, "an integer in 1..10000"),
            ("passes", isinstance(self.passes, int) and 1 <= self.passes <= 10_000, "an integer >= 1"),
            ("batch_size", isinstance(self.batch_size, int) and self.batch_size >= 1, "an integer >= 1"),
            ("doc_topic_prior", self.doc_topic_prior is None or self.doc_topic_prior > 0, "a number > 0"),
            ("topic_word_prior", self.topic_word_prior is None or self.topic_word_prior > 0, "a number > 0"),
            ("learning_decay", 0.5 < self.learning_decay <= 1.0, "a number in (0.5, 1]"),
            ("learning_offset", self.learning_offset > 1.0, "a number > 1"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValidationError(f"expected {expected}, got {getattr(self, name)!r}", field=name)

    @property
    def alpha(self) -> float:
        return float(self.doc_topic_prior) if self.doc_topic_prior is not None else 1.0 / self.topics

    @property
    def eta(self) -> float:
        return float(self.topic_word_prior) if self.topic_word_prior is not None else 1.0 / self.topics

    def fit(self, counts: sp.csr_matrix) -> Self:
        """Learn topics from a documents x words count matrix, one minibatch of documents at a time."""
        self._check()
        counts = sp.csr_matrix(counts, dtype=np.float64)
        n_docs, n_words = counts.shape
        if n_docs == 0 or counts.nnz == 0:
            raise ValidationError("no documents to learn from", field="data")
        rng = np.random.default_rng(self.seed)
        # scikit-learn's initialisation and schedule: lambda ~ Gamma(100, 1/100), rho_t = (offset + t)^-decay.
        lam = rng.gamma(100.0, 0.01, size=(self.topics, n_words))
        step = 0
        for _ in range(self.passes):
            order = rng.permutation(n_docs)
            for start in range(0, n_docs, self.batch_size):
                batch = counts[np.sort(order[start : start + self.batch_size])]
                exp_beta = np.exp(expected_log_dirichlet(lam))
                _, stats = _e_step(batch, exp_beta, self.alpha, max_iter=100, tol=1e-3, sstats=True)
                assert stats is not None
                rho = (self.learning_offset + step) ** -self.learning_decay
                lam = (1.0 - rho) * lam + rho * (self.eta + stats * (n_docs / batch.shape[0]))
                step += 1
        self.components_ = lam.astype(np.float32)
        self.n_steps_ = step
        self.doc_topic_ = self.transform(counts)
        return self

    @property
    def topic_word_(self) -> F32:
        """P(word | topic), K x V (each row sums to 1)."""
        c = self.components_.astype(np.float64)
        return np.asarray(c / c.sum(axis=1, keepdims=True), dtype=np.float32)

    def transform(self, counts: sp.csr_matrix, chunk: int = 65_536) -> F32:
        """P(topic | document) for each row of ``counts`` (in chunks of documents)."""
        counts = sp.csr_matrix(counts)
        parts = [
            infer_doc_topics(counts[s : s + chunk], self.components_, self.alpha)
            for s in range(0, counts.shape[0], chunk)
        ]
        return np.vstack(parts) if parts else np.zeros((0, self.topics), np.float32)
