"""Seed 003's recovery plan: tasks with an owner, the systems they restore (their priority follows those
systems' RTO), a due time, a status and progress notes; a late task nudges its owner, then goes to the
decision-makers with its context. rules.py decides, plan.py delivers."""
