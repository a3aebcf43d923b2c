"""videobatch: S3 uploads analysed by TwelveLabs Pegasus through the batch analysis API.

Layout (hexagonal): ``twelvelabs`` is the adapter for the TwelveLabs API, ``domain`` holds the pure rules
(packing, requeue, profiles), ``adapters`` hold DynamoDB/S3/EventBridge, and ``errors`` is the one exception tree.
"""
