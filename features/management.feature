Feature: Device management
  Login, logout and the cloud-side actions a producer takes on a device.

  @C2C-QA-02 @evidence-doc
  Scenario: Logging out revokes the device's tokens
    Given a paired device
    When the user logs out
    Then the cloud sees the device's tokens revoked within 30 seconds
    And the device shows itself as unpaired within 30 seconds

  @C2C-QA-04 @evidence-doc
  Scenario: Renaming, pausing and removing the device in the cloud is handled
    Given a paired device
    When the cloud renames the device to "Bench renamed"
    And the cloud pauses the device
    Then the device shows the cloud status "paused" within 60 seconds
    When the cloud resumes the device
    And 1 "jpg" file is captured
    Then every captured file arrives intact within 120 seconds
    When the cloud removes the device
    Then the device shows itself as unpaired within 60 seconds
