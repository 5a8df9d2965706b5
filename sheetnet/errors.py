"""The one exception type a user sees: its message is the single line the CLI prints."""


class SheetnetError(Exception):
    """A problem with the user's input or environment, stated in one line.

    The CLI prints ``error: <message>`` and exits non-zero; anything else that
    escapes is a bug in sheetnet.
    """
