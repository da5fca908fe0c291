"""The one exception type that means "the request's input is wrong", not "the model failed".

Input checks (the image, the prompt, the requested mode) raise `InputError`; the node answers
it with BAD_INPUT. Any other exception out of the models, a torch or transformers ValueError
included, is a MODEL_ERROR. It subclasses ValueError so callers that catch ValueError (the
command line) still catch it.
"""


class InputError(ValueError):
    """A request's image, prompt or option cannot be taken as given; the message says why."""
