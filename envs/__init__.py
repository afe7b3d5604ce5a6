"""Gymnasium environments of rlnas, installed as `rlnas.envs`.

Registered ids (the entry point is a string, so nothing heavy is imported
until the environment is made):

- `rlnas/ArchBuilder-v0`: builds one architecture per episode, one decision per step.
- `rlnas/ArchEditor-v0`: edits one architecture of a population per episode (the
  PPO controller's default).
"""

from gymnasium.envs.registration import register

register(id="rlnas/ArchBuilder-v0", entry_point="rlnas.envs.arch_builder:ArchBuilderEnv")
register(id="rlnas/ArchEditor-v0", entry_point="rlnas.envs.arch_editor:ArchEditorEnv")
