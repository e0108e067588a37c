"""Who may do what, and how a decision proves who took it: the proof (proof.py), its check in a workflow
(verify.py), the default permissions of each decision (permissions.py), and the policy's authorization of
assignments and windows (authority.py). README, "Who can do what", tells the model."""
