"""Peers in the same run: DBOS Transact and procrastinate moving the benchmark's one-step order.

``harness`` (run by ``bench/run.py --peers``) installs them into a venv of their own
(``venv``) and runs each peer program (``dbos_peer``, ``procrastinate_peer``) there; the peer
programs import only that venv's packages and ``bench.peers.program``.
"""
