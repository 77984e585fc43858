Feature: Upload status on the device
  The device shows what is left to upload, what is uploading and how each upload ended.
  Verified from the device's machine-readable status when it has one, else by an operator.

  @C2C-STAT-01 @C2C-STAT-02 @C2C-UPL-02 @smoke @evidence-doc
  Scenario: The device shows the remaining file count and size
    Given a paired device
    And the network profile "cellular"
    And the device is in "manual" upload mode
    # files of two 8 MB parts each: a device that uploads everything at once still finishes
    # them in waves, so the remaining count and size have steps to follow
    When a large file of 16 MB is captured
    And a large file of 16 MB is captured
    And a large file of 16 MB is captured
    And a large file of 16 MB is captured
    Then the device shows 4 files remaining
    And the device shows the total remaining size of the captured files
    When the user uploads all files
    Then the device's remaining files and size follow the cloud until the files arrive
    And every captured file arrives intact within 120 seconds
    And the device shows 0 files remaining

  @C2C-STAT-03 @evidence-doc
  Scenario: The device shows the progress of the current upload
    Given a paired device
    And the network profile "cellular"
    When a large file of 24 MB is captured
    Then the device shows the current file's upload progress
    And every captured file arrives intact within 300 seconds

  @C2C-STAT-04 @C2C-UPL-02 @evidence-doc
  Scenario: The device shows completed, queued and failed uploads
    Given a paired device
    When 2 "jpg" files are captured
    And a "zero-length" corrupted "jpg" file is captured
    Then every intact captured file arrives within 120 seconds
    And the device shows the completed, queued and failed uploads

  @C2C-NET-01 @C2C-NETW-04 @evidence-doc
  Scenario: The device shows its network connection status
    Given a paired device
    And the network profile "cellular"
    When the link goes down
    Then the device shows the network as "down" within 60 seconds
    When the link comes back
    Then the device shows the network as "up" within 60 seconds
    When a large file of 40 MB is captured
    Then the device shows its connection type, speed and health
