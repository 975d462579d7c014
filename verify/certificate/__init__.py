"""Certificates: what a "verified" rests on, written so that anyone can re-check it
(:mod:`verify.certcheck` is the independent checker)."""

from verify.certificate.build import build_certificate, input_split_proof, write_certificate

__all__ = ["build_certificate", "input_split_proof", "write_certificate"]
