"""Adapter for the TwelveLabs API: ``client`` (HTTP), ``models`` (wire shapes), ``validation`` (documented rules),
``retry`` (when to try again) and ``limits`` (the API's numbers).

Import the submodules directly (``from videobatch.twelvelabs.client import TwelveLabsClient``); this package
module stays empty so importing ``limits`` alone costs nothing.
"""
