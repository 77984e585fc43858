@tether
Feature: Tethered camera to cloud
  A stills camera tethered over USB (PTP) to the rig: every frame the camera shoots is
  downloaded to the rig's local storage and uploaded, and a power cut of the rig in the
  middle of a transfer loses nothing and duplicates nothing. On the bench the camera is
  libgphoto2's virtual camera, running inside the device process. Delivery is judged once
  the rig has settled (nothing in flight, nothing new for a few seconds): the cloud must hold
  one asset per shutter press, each captured frame once, and no frame under another name.

  @C2C-UPL-01 @C2C-QUE-03 @C2C-RES-01 @evidence-doc
  Scenario: Tethered camera -> cloud, with a power cut of the rig mid-transfer and nothing lost
    Given a paired "reference" device with a tethered virtual camera
    When the camera captures 5 photos
    And the rig loses power while a file is uploading
    And power is restored
    And the camera captures 2 photos
    Then every captured file is delivered exactly once with a matching hash
    And the tethered camera shows as connected
