"""The contract with wearable firmware: BLE profiles, byte-exact codecs, a virtual wearable, MCU export.

Depends on nothing else of this project and nothing heavy.
"""
