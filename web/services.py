from django.contrib.auth import get_user_model


def demo_user_ensure(*, username: str, password: str) -> tuple[object, bool]:
    """The demo user, created with ``password`` the first time only; whether it was created.

    Never reset afterwards: a new password would end every session of the
    pages already open, and a password the user changed is theirs.
    """
    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_password(password)
        user.save(update_fields=["password"])
    return user, created
