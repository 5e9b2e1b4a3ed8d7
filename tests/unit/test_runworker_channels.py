import pytest
from django.core.management.base import CommandError

from jobs.management.commands.runworker import select_channels
from project import names
from routing import channel_routes


def test_no_arguments_means_every_background_channel_in_routing():
    assert select_channels(positional=[], only=[], exclude=[]) == list(channel_routes)


def test_only_channels_and_positional_names_select_those():
    assert select_channels(positional=[], only=[names.PAYMENTS], exclude=[]) == [names.PAYMENTS]
    assert select_channels(positional=[names.PAYMENTS], only=[], exclude=[]) == [names.PAYMENTS]


def test_exclude_channels_takes_the_rest():
    rest = [c for c in channel_routes if c != names.PAYMENTS]
    if rest:
        assert select_channels(positional=[], only=[], exclude=[names.PAYMENTS]) == rest
    else:
        with pytest.raises(CommandError, match="No channels left"):
            select_channels(positional=[], only=[], exclude=[names.PAYMENTS])


def test_unknown_channel_is_an_error_listing_the_known_ones():
    with pytest.raises(CommandError) as info:
        select_channels(positional=[], only=["paymnets"], exclude=[])
    assert "paymnets" in str(info.value)
    assert names.PAYMENTS in str(info.value)
