"""Deploying to boards: the Zephyr application (``tvmc micro create-project``,
``build``, ``flash``), the bare-metal benchmark server for the emulated boards,
and the model descriptor both share."""
