"""The Axolotl adapter: ``plugins: [inspo_plugin.InSPOPlugin]``, ``rl: inspo`` and the dataset strategy
``type: inspo_plugin.reflective``. See README.md in this folder.

Nothing is imported here: Axolotl imports the plugin module at start-up and the trainer module only
when it builds the trainer, after it has merged the plugins' training-argument mix-ins.
"""
